"""Media-level building blocks of motion and object detection.

Pure library: numpy, OpenCV, onnxruntime and PyAV only; nothing of the API, the jobs or
the database. ``jobs/`` wires these pieces to streams, queues and events.

- :mod:`media.detection.boxes`: the pixel box every detector returns.
- :mod:`media.detection.sampler`: decodes a stream's packets at an interval, cheaply.
- :mod:`media.detection.motion`: running-background motion detection on small grey frames.
- :mod:`media.detection.objects`: the object-detector interface and its backends.
- :mod:`media.detection.regions`: normalized polygons and the bottom-centre rule.
- :mod:`media.detection.events`: merging detections over time into events.

See ``docs/detection.md`` for parameters, costs and what the default detector can find.
"""
