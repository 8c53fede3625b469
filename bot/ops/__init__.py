"""Operations: logs, metrics and doctor, used by every layer above the domain."""
