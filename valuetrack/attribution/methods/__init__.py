"""Attribution methods behind one interface (see base.py): ab, structural, its, did,
synthetic_control and auto, each one module registering itself."""

from valuetrack.attribution.methods.base import (DailyGap, Effect, Method, NotEstimable, all_methods, get, label,
                                                  labels, names, register, unregister)

__all__ = ["DailyGap", "Effect", "Method", "NotEstimable", "all_methods", "get", "label", "labels", "names",
           "register", "unregister"]
