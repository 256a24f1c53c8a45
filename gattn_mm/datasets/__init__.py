from .base_microscopy import AnnotationError, DataRootError
from .breakhis import BreakHis, parse_breakhis_name, patient_folds
from .digitbags import DigitBags
from .fungi import Fungi
from .slide_folder import SlideFolder
from .transforms import *  # noqa: F401,F403

__all__ = ['AnnotationError', 'BreakHis', 'DataRootError', 'DigitBags', 'Fungi', 'SlideFolder',
           'parse_breakhis_name', 'patient_folds']
