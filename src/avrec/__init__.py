"""avrec: recommend audio and video content by understanding it.

Importing this package is cheap; heavy parts (torch, faiss, encoders) load lazily.
"""

__version__ = "0.1.0"
