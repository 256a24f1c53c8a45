# Ablation: a trained gattn_fungi_cpu.py model on SynthCells deciding with its instances
# alone (by the rule of the label set, InstanceHead(pool='mil')), without the fused
# head. Test only:
#   python tools/test.py configs/baselines/synthcells_instance_head.py GATTN_CHECKPOINT
_base_ = ['../gattn_fungi_cpu.py']
model = dict(predict_from='instance_head')
