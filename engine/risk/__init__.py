"""Risk: the gate every order passes, the trading state, and the controls it applies."""
