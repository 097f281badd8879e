import Shared
print("gateway")
