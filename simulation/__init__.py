"""A switchable simulation of Sefaria's services, for tests and `make demo`."""

from simulation.app import MODES, Simulation, create_app, services_yaml

__all__ = ["MODES", "Simulation", "create_app", "services_yaml"]
