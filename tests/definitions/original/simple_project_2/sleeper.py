#!/usr/bin/env python
import time
time.sleep(1)
