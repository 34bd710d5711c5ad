import os


class Settings:
    PROJECT_NAME: str = os.environ.get("PROJECT_NAME", "tmplapi")


settings = Settings()
