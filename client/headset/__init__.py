"""Headset mode: the headset loop (:mod:`.app`), rotational reprojection
(:mod:`.reprojection`) and the OpenXR runtime (:mod:`.openxr`, optional ``openxr`` extra)."""
