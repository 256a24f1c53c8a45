# Ablation: a trained gattn model on Megapixel digits deciding with its instances alone (by
# the rule of the label set, InstanceHead(pool='mil')), without the fused head. Test
# only:
#   python tools/test.py configs/baselines/megapixel_instance_head.py GATTN_CHECKPOINT
_base_ = ['../gattn_megapixel.py']
model = dict(predict_from='instance_head')
