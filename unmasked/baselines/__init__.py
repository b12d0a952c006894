"""Classical (non-learned) fillers behind the model interface; importing registers them."""
