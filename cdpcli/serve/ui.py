PAGE = "<!doctype html><title>cdp serve</title>"
