from .instance_localization import InstanceLocalization
from .patient_accuracy import PatientAccuracy

__all__ = ['InstanceLocalization', 'PatientAccuracy']
