# Ablation: a trained gattn model on Megapixel digits predicting from its instances
# alone (the mean of the instance head's logits: a vote of the instances), without
# the global feature and the fused head. Test only:
#   python tools/test.py configs/baselines/megapixel_instance_only.py GATTN_CHECKPOINT
_base_ = ['../gattn_megapixel.py']
model = dict(predict_from='instance_head', instance_head=dict(pool='mean'))
