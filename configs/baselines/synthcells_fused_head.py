# Ablation: a trained gattn_fungi_cpu.py model on SynthCells deciding with its fused
# head alone (the paper's classifier: the global feature + the instance features
# weighted by a learned gated attention), without its instances' own decision. Test
# only:
#   python tools/test.py configs/baselines/synthcells_fused_head.py GATTN_CHECKPOINT
_base_ = ['../gattn_fungi_cpu.py']
model = dict(predict_from='head')
