"""Routing: accept automatically, reject, or send to humans (which project, which expertise,
how many annotators), by a policy over check results, domain risk and a human budget."""

from datamill.route.policy import Policy, Rule, load_policy
from datamill.route.stage import human_records, route_dataset

__all__ = ["Policy", "Rule", "human_records", "load_policy", "route_dataset"]
