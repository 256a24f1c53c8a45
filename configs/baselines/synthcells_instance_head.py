# Ablation: a trained gattn_fungi_cpu.py model on SynthCells deciding with its instances
# alone (pooled by the learned gated attention). gattn_fungi_cpu.py itself now decides
# so; this row stays for tables measured when it decided by both heads. Test only:
#   python tools/test.py configs/baselines/synthcells_instance_head.py GATTN_CHECKPOINT
_base_ = ['../gattn_fungi_cpu.py']
model = dict(predict_from='instance_head')
