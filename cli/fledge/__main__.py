from fledge.main import app

app(prog_name="fledge")
