"""The device side of Palier: the MQTT contract (no Django import) and the fleet simulator."""
