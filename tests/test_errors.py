"""A failed command is reported by the line of its output that says what went wrong."""

from __future__ import annotations

from fabstack.engine.errors import telling_line

LARAVEL = """
   Illuminate\\Database\\QueryException

  SQLSTATE[08006] [7] connection to server at "10.213.0.41", port 6432 failed: server login has been failing

  at vendor/laravel/framework/src/Illuminate/Database/Connection.php:822
    818|             $exceptionType = $this->isUniqueConstraintError($e)
    822|     }
"""


def test_the_line_naming_the_error_is_shown_not_a_code_excerpt() -> None:
    assert telling_line(LARAVEL).startswith("SQLSTATE[08006] [7] connection to server")
    assert telling_line("building\n  }\n") == "building"  # no error named: the last line with words
    assert telling_line("}\n") == "}" and telling_line("") == ""
