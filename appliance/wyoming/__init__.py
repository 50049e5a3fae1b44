"""The Wyoming server for Home Assistant, over the in-process voice models and the agent."""
