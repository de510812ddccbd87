"""A switchable simulation of Sefaria's services, for tests and `make demo`."""

from simulation.app import create_app, services_yaml
from simulation.state import MODES, Simulation

__all__ = ["MODES", "Simulation", "create_app", "services_yaml"]
