"""The local stack, the demo and the fakes: `checker local`, `make demo`, the tests and the
benchmarks use them; nothing on checker's base path imports this package (tests/test_install.py),
and none of it is deployed to Lambda.

- stack.py         `checker local`: moto behind front.py, the app, the deploy of a checklist's function
- front.py         a proxy in front of moto answering the entry-point lookups with the app's address
- apps.py          the apps it serves: the bundled spotify runtime, or any Python Lambda handler
- events.py        HTTP requests as Function URL / HTTP API / REST API events, and answers back
- app_server.py    an app behind HTTP, its log lines sent to CloudWatch Logs
- deploy.py        a Lambda function, its role and its entry point on a moto server
- demo.py          `make demo`: the incident told on the local stack
- http.py          one small threaded HTTP server on 127.0.0.1 that every fake here uses
- fake_spotify.py  the Spotify Web API calls the cache makes, with seeded libraries and faults
- dynamo_proxy.py  a proxy in front of a moto server: CREATING states, injected errors, lies

The Lambda's code is `spotify_playlist` alone, which imports nothing from here.
"""
