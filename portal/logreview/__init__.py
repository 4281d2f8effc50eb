"""Log review (loggkontroll): who read which of an organisation's records."""
