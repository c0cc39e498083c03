"""Business flows: the steps of each flow, using the clients and the models.

Views, admin actions, management commands and background jobs all call these.
"""
