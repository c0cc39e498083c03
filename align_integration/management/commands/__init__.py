"""The ``align_*`` management commands: thin entry points over ``workflows``."""
