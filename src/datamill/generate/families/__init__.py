"""The built-in task families: every module here registers one or more families on import."""
