"""datamill: training data for large language models, synthetic and human, with provenance."""

from datamill.records import (
    Annotation,
    Candidate,
    CheckResult,
    Message,
    Provenance,
    Record,
    ToolCall,
    Usage,
)

__version__ = "0.1.0"

__all__ = [
    "Annotation",
    "Candidate",
    "CheckResult",
    "Message",
    "Provenance",
    "Record",
    "ToolCall",
    "Usage",
    "__version__",
]
