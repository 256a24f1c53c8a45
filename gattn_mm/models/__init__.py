from .backbones import *  # noqa: F401,F403
from .classifiers import *  # noqa: F401,F403
from .data_preprocessors import *  # noqa: F401,F403
from .fusions import *  # noqa: F401,F403
from .heads import *  # noqa: F401,F403
from .losses import *  # noqa: F401,F403
from .necks import *  # noqa: F401,F403
from .samplers import *  # noqa: F401,F403
from .selectors import *  # noqa: F401,F403
from .utils import GattnState, Selection  # noqa: F401
