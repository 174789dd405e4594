import os, hashlib, numpy as np
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import tensorflow as tf, keras
keras.utils.set_random_seed(0); tf.config.experimental.enable_op_determinism()
rng = np.random.default_rng(0)
x = rng.standard_normal((512, 28, 28, 1)).astype("float32"); y = rng.integers(0, 10, 512)
m = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Conv2D(16, 3, activation="relu"),
    keras.layers.DepthwiseConv2D(3, activation="relu"), keras.layers.Conv2D(32, 1, activation="relu"),
    keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(64, activation="relu"), keras.layers.Dense(10)])
m.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
m.fit(tf.data.Dataset.from_tensor_slices((x, y)).shuffle(512, seed=0).batch(32).prefetch(tf.data.AUTOTUNE), epochs=2, verbose=0)
h = hashlib.sha256(b"".join(w.tobytes() for w in m.get_weights())).hexdigest()[:16]
print(h, os.environ.get("ONEDNN_MAX_CPU_ISA"), os.environ.get("TF_ENABLE_ONEDNN_OPTS"), len(os.sched_getaffinity(0)))
