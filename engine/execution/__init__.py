"""Order execution: order values, the Broker interface, and the simulated broker."""
