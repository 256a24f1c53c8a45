from . import models  # noqa: F401
__version__ = '0.1.0'
