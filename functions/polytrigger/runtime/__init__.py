"""The running function: configuration, wiring the layers together once per container, observability."""
