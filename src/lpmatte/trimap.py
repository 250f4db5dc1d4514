"""The trimap's three classes, one definition for the model, the data and the metrics.

The low-res network predicts, and training targets hold, class indices (``UNKNOWN`` is the
"uncertain" class whose cells the refiner refines); trimap files and the evaluation
protocols store the same classes as the 8-bit values :data:`TRIMAP_VALUES`, in that order.
"""

BACKGROUND, UNKNOWN, FOREGROUND = 0, 1, 2
TRIMAP_VALUES = (0, 128, 255)  # by class index: TRIMAP_VALUES[UNKNOWN] == 128
