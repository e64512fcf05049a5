"""The zoo: one YAML spec per network (installed as the package `cnnstat.zoo_specs`)."""
