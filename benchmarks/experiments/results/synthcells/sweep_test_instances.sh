#!/bin/bash
# test-time instance count (NS, e.g. "48 64 96 128") on SPLIT (val) of the SynthCells checkpoints
cd "$(dirname "$0")/../../../.."  # the repository root; checkpoints of the runs in README.md
declare -A CK=( [synthcells]=work_dirs/ex_default_std/gattn/best_accuracy_top1_epoch_5.pth
 [synthcells_p6]=work_dirs/ex_p6_std/gattn/best_accuracy_top1_epoch_8.pth
 [synthcells_p6s2]=work_dirs/ex_p6_std_s2/gattn/best_accuracy_top1_epoch_12.pth
 [synthcells_p7]=work_dirs/ex_p7_std/gattn/best_accuracy_top1_epoch_12.pth
 [synthcells_p8]=work_dirs/ex_p8_std/gattn/best_accuracy_top1_epoch_11.pth )
SPLIT=${SPLIT:-val}
for key in synthcells_p8 synthcells_p6 synthcells_p6s2 synthcells_p7 synthcells; do
  data=data/${key%s2}
  if [ $key = synthcells ]; then lab=""; else lab="model.head.num_classes=2 model.instance_head.num_classes=2 model.instance_head.negative_class=0 model.data_preprocessor.num_classes=2"; fi
  for n in $NS; do
    acc=$(.venv/bin/python tools/test.py configs/gattn_fungi_cpu.py ${CK[$key]} --cfg-options test_dataloader.dataset.data_root=$data test_dataloader.dataset.split=$SPLIT test_dataloader.num_workers=1 model.sampler.test_cfg.num_instances=$n $lab 2>&1 | grep -o "accuracy/top1: [0-9.]*" | tail -1)
    echo "$key $SPLIT N=$n $acc"
  done
done
