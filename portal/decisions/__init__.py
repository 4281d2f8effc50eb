"""Chair decisions (ordförandebeslut): drafted by the jour, signed by the chair on a phone."""
