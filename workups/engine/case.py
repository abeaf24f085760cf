from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

VITAL_SIGNS = ("heart_rate", "systolic_bp", "diastolic_bp", "resp_rate", "spo2")


@dataclass(frozen=True, slots=True)
class Case:
    """One patient's history and examination, as the engine sees it.

    `findings` maps a finding code to True (present) or False (absent);
    a code that is missing was not recorded. Validation of the values is the
    caller's job (see workups.serializers); the engine trusts its input.
    """

    sex: str
    age: int
    duration_days: int
    findings: Mapping[str, bool] = field(default_factory=dict)
    pregnant: bool | None = None
    temperature_c: float | None = None
    vitals: Mapping[str, float] = field(default_factory=dict)
    # Result code -> value (a number in the code's unit, or True/False): what came back (GUIDANCE 6).
    results: Mapping[str, float | bool] = field(default_factory=dict)

    def __post_init__(self):
        object.__setattr__(self, "findings", MappingProxyType(dict(self.findings)))
        object.__setattr__(self, "vitals", MappingProxyType(dict(self.vitals)))
        object.__setattr__(self, "results", MappingProxyType(dict(self.results)))
