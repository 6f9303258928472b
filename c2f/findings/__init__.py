"""The chapters' findings: functions that write a page's sentences from its numbers."""
