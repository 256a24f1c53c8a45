# Experiment (not shipped): configs/gattn_fungi_cpu.py with the contrast prior faded
# out of the attention's teaching over the second half of training (PriorAnnealHook):
# does the attention, once the reader knows the class, learn to rank the marker cells
# above the dark debris the prior prefers (SynthCells p8)?
_base_ = ['../../../configs/gattn_fungi_cpu.py']
custom_hooks = [dict(type='SafeCheckpointHook'), dict(type='PriorAnnealHook', begin=0.5)]
