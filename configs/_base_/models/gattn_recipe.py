# The gattn recipe: every shipped gattn config inherits it, and may set only the
# backbone and reader (and their pretraining), the sizes (glance, crops, boxes,
# instances, channels) and the label set (classes, the "absent" class of a presence
# task); tests/test_recipe.py checks it. What each part does and why: docs/recipe.md.
model = dict(
    type='GatedAttentionClassifier',
    # the glance: gated attention over the cells of the backbone's last map
    neck=dict(type='GatedAttentionNeck', hidden_channels=128),
    # the instances: the N cells of most attention, not adjacent, each box centred
    # on the attention's centroid around its cell; at test time each instance is read
    # in 4 views shifted by 1/14 of its box, their features averaged
    sampler=dict(type='InstanceSampler',
                 selector=dict(type='TopKSelector', min_distance=2, centre='centroid'),
                 test_cfg=dict(views=[(1 / 14, 0), (-1 / 14, 0), (0, 1 / 14), (0, -1 / 14)])),
    # the global feature + the instance features weighted by a learned gated
    # attention over the instances (the paper's global + local classifier): trained,
    # its loss reaches the glance's attention; the reader's gradient from it is cut
    head=dict(type='FusionHead', fusion=dict(type='GatedInstanceFusion'),
              detach_instances=True, init_cfg=None),
    # the reader learns by multiple-instance learning, by the rule of the label set
    # (MILLoss): with an "absent" class every instance of an absent image is
    # negative and an image is positive iff some instance is (noisy-OR: all its
    # instances share the gradient, no lucky first pick needed); without one the
    # instances carry their image's class in proportion to their probability.
    instance_head=dict(type='InstanceHead', pool='mil', negative_class=None,
                       mil_loss=dict(type='MILLoss', positive='noisy_or'), init_cfg=None),
    # the decision: the mean of the class probabilities of the instances (by the
    # same rule, pool='mil': positive iff one instance is, or their vote) and of the
    # fused head. model_zoo.md has the ablation with each deciding alone.
    predict_from=('instance_head', 'head'),
    # the attention learns from a hand-made contrast prior over all cells and from
    # what the reader found in the sampled instances
    attention_losses=[
        dict(type='ContrastPriorLoss', loss_weight=1.0, temperature=0.5),
        dict(type='EvidenceDistillLoss', loss_weight=1.0, temperature=0.5,
             with_contrast=True),
    ],
)
