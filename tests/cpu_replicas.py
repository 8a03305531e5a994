"""python tests/cpu_replicas.py <train.py flags>: train.py with the CPU split into two logical devices that stand
in for two GPUs, so that `--train_gpu 0 1` runs MirroredStrategy on a machine without GPUs (tests only)."""

import os
import sys

import tensorflow as tf

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

import train
import utils.training.distribute
from utils.config import run_main

utils.training.distribute.replica_devices = lambda train_gpu: [f"/cpu:{gpu}" for gpu in train_gpu]
run_main(train.train, train.TrainConfig, train.__doc__)
