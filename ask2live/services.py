"""What the handlers depend on, built once in app.py and passed in."""

from __future__ import annotations

from dataclasses import dataclass

from .accounts import Accounts
from .config import Config
from .cuesheet import CueSheet
from .metrics import Metrics
from .rooms import Rooms
from .schedule import Schedule
from .store import Store
from .throttle import Throttle
from .voice import Voice
from .writebehind import WriteBehind


@dataclass
class Services:
    config: Config
    store: Store
    accounts: Accounts
    schedule: Schedule
    cuesheet: CueSheet
    voice: Voice
    rooms: Rooms
    write_behind: WriteBehind
    metrics: Metrics
    # Attempt counters shared by the processes of a deployment (login and sign-up throttles).
    throttle: Throttle
