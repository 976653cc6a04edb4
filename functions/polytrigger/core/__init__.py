"""The pure domain: triggers, actions, outcomes and the keys derived from them. No I/O, no AWS."""
