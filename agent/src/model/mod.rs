//! The call model (skeleton; being implemented).
