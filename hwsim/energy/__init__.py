"""Energy per action and the energy model (specs/energy.md)."""

from hwsim.energy.model import (
    ACTIONS,
    BUFFERS,
    COMPONENT_OF,
    COMPONENTS,
    EnergyContext,
    LayerEnergy,
    ModelEnergy,
    layer_energy,
    model_energy,
    per_action_energy,
)
from hwsim.energy.table import (
    HOROWITZ_45NM,
    EnergyTable,
    energy_table_from_dict,
    load_energy_table,
)

__all__ = [
    "ACTIONS",
    "BUFFERS",
    "COMPONENTS",
    "COMPONENT_OF",
    "HOROWITZ_45NM",
    "EnergyContext",
    "EnergyTable",
    "LayerEnergy",
    "ModelEnergy",
    "energy_table_from_dict",
    "layer_energy",
    "load_energy_table",
    "model_energy",
    "per_action_energy",
]
