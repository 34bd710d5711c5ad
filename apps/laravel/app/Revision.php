<?php

namespace App;

/** The commit this release was built from: fabstack writes REVISION into every artifact. */
class Revision
{
    public static function current(): string
    {
        static $revision = null;
        $file = base_path('REVISION');
        return $revision ??= is_file($file) ? trim((string) file_get_contents($file)) : 'development';
    }
}
