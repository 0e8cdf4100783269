"""What must outlive one request: the state store interface and its implementations."""
