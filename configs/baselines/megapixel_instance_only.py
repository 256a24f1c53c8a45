# Ablation: a trained gattn model on Megapixel digits predicting from its instances
# alone (the instance head, pool='mil': the mean of the instances' logits, a vote),
# without the global feature and the fused head. Test only:
#   python tools/test.py configs/baselines/megapixel_instance_only.py GATTN_CHECKPOINT
_base_ = ['../gattn_megapixel.py']
model = dict(predict_from='instance_head')
