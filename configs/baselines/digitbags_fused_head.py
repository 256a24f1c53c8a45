# Ablation: a trained gattn model on DigitBags deciding with its fused head alone (the
# paper's classifier: the global feature + the instance features weighted by a
# learned gated attention), without its instances' own decision. Test only:
#   python tools/test.py configs/baselines/digitbags_fused_head.py GATTN_CHECKPOINT
_base_ = ['../gattn_digitbags.py']
model = dict(predict_from='head')
