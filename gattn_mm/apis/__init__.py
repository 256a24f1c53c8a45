from .gattn_inferencer import GattnInferencer, attention_on_original

__all__ = ['GattnInferencer', 'attention_on_original']
from .image_files import expand_image_paths, output_paths  # noqa: E402

__all__ += ['expand_image_paths', 'output_paths']
from .model_index import register_gattn_models, release_url  # noqa: E402

__all__ += ['register_gattn_models', 'release_url']
from .mmpretrain_reading import microscopy_reading  # noqa: E402

__all__ += ['microscopy_reading']
