#!/usr/bin/env python
import json, sys
print(json.dumps({"Test1": True, "Test2": False}))
