"""Fakes and helpers for the tests, the benchmarks and `checker local`; never deployed to Lambda.

- http.py          one small threaded HTTP server on 127.0.0.1 that every fake here uses
- fake_spotify.py  the Spotify Web API calls the cache makes, with seeded libraries and faults
- dynamo_proxy.py  a proxy in front of a moto server: CREATING states, injected errors, lies
- app_server.py    the real Lambda handler behind HTTP, its log lines sent to CloudWatch Logs
- deploy.py        a Lambda function, its role and Function URL on a moto server

They ship with checker because `checker local` runs them; the Lambda's code is `spotify_playlist`
alone, which imports nothing from here.
"""
